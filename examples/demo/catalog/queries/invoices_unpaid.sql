-- Invoices of one tenant issued before a day that have no payment at all.
-- Partly paid invoices have a payment and are not listed here (see invoices.overdue).
-- Zero rows is the evidence that no such invoice exists.
SELECT
  i.invoice_id,
  i.invoice_number,
  i.customer_id,
  i.issued_on,
  i.due_on,
  i.amount_cents,
  i.currency
FROM invoices AS i
WHERE i.tenant = :tenant
  AND i.issued_on < :issued_before
  AND NOT EXISTS (
    SELECT 1 FROM payments AS p WHERE p.invoice_id = i.invoice_id
  )
ORDER BY i.issued_on, i.invoice_id
