"""Bank file formats (ISO 20022): camt.053 statements in, pain.001 payment files out."""
