-- Invoices whose payments add up to more than the amount due: candidates for a refund.
SELECT
  i.invoice_id,
  i.invoice_number,
  i.customer_id,
  i.amount_cents,
  SUM(p.amount_cents) AS paid_cents,
  SUM(p.amount_cents) - i.amount_cents AS overpaid_cents,
  COUNT(p.payment_id) AS payments,
  i.currency
FROM invoices AS i
JOIN payments AS p ON p.invoice_id = i.invoice_id
WHERE i.tenant = :tenant
GROUP BY i.invoice_id, i.invoice_number, i.customer_id, i.amount_cents, i.currency
HAVING SUM(p.amount_cents) > i.amount_cents
ORDER BY i.invoice_id
