-- Every customer of one tenant, oldest customer id first.
SELECT
  c.customer_id,
  c.name,
  c.email,
  c.country,
  c.payment_terms_days,
  c.created_at
FROM customers AS c
WHERE c.tenant = :tenant
ORDER BY c.customer_id
