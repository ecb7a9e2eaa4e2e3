"""Collectors: one module per source, each writing normalised facts with idempotent upserts.

Entry points: `collectors.run.collect` (every configured source once),
`collectors.billing_files.import_billing` (FOCUS or CUR 2.0 export files) and
`collectors.athena.import_athena` (the same exports queried in place through Athena).
"""
