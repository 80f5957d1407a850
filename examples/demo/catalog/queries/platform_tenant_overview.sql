-- One line per tenant: size of its book and what is still open. Platform operators only.
SELECT
  t.tenant,
  t.display_name,
  t.currency,
  (SELECT COUNT(*) FROM customers AS c WHERE c.tenant = t.tenant) AS customers,
  (SELECT COUNT(*) FROM orders AS o WHERE o.tenant = t.tenant) AS orders,
  (SELECT COUNT(*) FROM invoices AS i WHERE i.tenant = t.tenant) AS invoices,
  (SELECT COALESCE(SUM(i.amount_cents), 0) FROM invoices AS i WHERE i.tenant = t.tenant)
    AS invoiced_cents,
  (SELECT COALESCE(SUM(p.amount_cents), 0) FROM payments AS p WHERE p.tenant = t.tenant)
    AS collected_cents
FROM tenants AS t
ORDER BY t.tenant
