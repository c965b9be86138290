"""One ConfigurableResource per external system; secrets bound with EnvVar in pipelines/definitions.py."""
