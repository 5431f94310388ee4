-- The catalog queries tokio-postgres 0.7 sends when a result or parameter has a type OID it
-- does not know (TYPEINFO_QUERY, its enum and composite follow-ups). It sends nothing at
-- connection start. $1 is a type OID (here: int4, 23) or a relation OID ({t_oid}).

-- query: typeinfo
-- params: '23'
SELECT t.typname, t.typtype, t.typelem, r.rngsubtype, t.typbasetype, n.nspname, t.typrelid
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
INNER JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid
WHERE t.oid = $1

-- query: typeinfo_fallback
-- params: '23'
SELECT t.typname, t.typtype, t.typelem, NULL::OID, t.typbasetype, n.nspname, t.typrelid
FROM pg_catalog.pg_type t
INNER JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid
WHERE t.oid = $1

-- query: typeinfo_enum
-- params: '23'
SELECT enumlabel
FROM pg_catalog.pg_enum
WHERE enumtypid = $1
ORDER BY enumsortorder

-- query: typeinfo_composite
-- params: '{t_oid}'
SELECT attname, atttypid
FROM pg_catalog.pg_attribute
WHERE attrelid = $1
AND NOT attisdropped
AND attnum > 0
ORDER BY attnum
