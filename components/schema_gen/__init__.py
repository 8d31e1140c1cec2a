"""SchemaGen (infer a Schema from statistics) and ImportSchemaGen (use the user's schema.pbtxt)."""

from components.schema_gen.component import (  # noqa: F401
    ImportSchemaGen, ImportSchemaGenParameters, SchemaGen, SchemaGenParameters,
)
