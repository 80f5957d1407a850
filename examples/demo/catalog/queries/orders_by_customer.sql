-- All orders of one customer, with the invoice number once the order is invoiced.
SELECT
  o.order_id,
  o.ordered_on,
  o.status,
  o.shipped_on,
  o.total_cents,
  o.currency,
  i.invoice_number
FROM orders AS o
LEFT JOIN invoices AS i ON i.order_id = o.order_id
WHERE o.tenant = :tenant
  AND o.customer_id = :customer_id
ORDER BY o.ordered_on, o.order_id
