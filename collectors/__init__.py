"""Collectors: one module per source, each writing normalised facts with idempotent upserts.

Entry points: `collectors.run.collect` (every configured source once) and
`collectors.billing_files.import_billing_file` (a FOCUS or CUR 2.0 export).
"""
