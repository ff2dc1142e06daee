#!/usr/bin/python3
"""Validates Traefik dynamic-configuration YAML files against a SchemaStore JSON schema.

Usage: validate_traefik_schema.py SCHEMA.json FILE.yml...
Prints one line per error and exits 1 if any file is invalid, 0 if all are valid.
Must run under Debian's /usr/bin/python3 (python3-jsonschema, python3-yaml).
"""
import json
import sys

import jsonschema
import yaml


def main():
    schema = json.load(open(sys.argv[1]))
    validator = jsonschema.Draft7Validator(schema)
    bad = 0
    for path in sys.argv[2:]:
        with open(path) as f:
            doc = yaml.safe_load(f)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for e in errors:
            print("%s: %s: %s" % (path, "/".join(str(p) for p in e.path), e.message))
        bad += bool(errors)
    print("%d file(s) valid, %d invalid" % (len(sys.argv) - 2 - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
