-- Customers of one tenant whose name or email contains the search text (case-insensitive).
-- instr() instead of LIKE: the search text is matched literally, never as a wildcard pattern.
SELECT
  c.customer_id,
  c.name,
  c.email,
  c.country,
  c.created_at
FROM customers AS c
WHERE c.tenant = :tenant
  AND (instr(lower(c.name), lower(:q)) > 0 OR instr(lower(c.email), lower(:q)) > 0)
ORDER BY c.name, c.customer_id
