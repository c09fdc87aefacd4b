"""The sans-IO decision core: paths, lookups, conditionals, ranges, negotiation and the
response fields, as plain functions over plain data. Every front end uses this one core."""
