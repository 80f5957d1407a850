-- Orders whose total reaches a threshold given in major currency units (e.g. 2500.00).
SELECT
  o.order_id,
  o.ordered_on,
  o.customer_id,
  c.name AS customer_name,
  o.status,
  o.total_cents,
  o.currency
FROM orders AS o
JOIN customers AS c ON c.customer_id = o.customer_id
WHERE o.tenant = :tenant
  AND o.total_cents >= :min_total * 100
ORDER BY o.total_cents DESC, o.order_id
