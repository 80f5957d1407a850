"""The default Cedar schema and policies (`default.cedarschema`, `*.cedar`)."""
