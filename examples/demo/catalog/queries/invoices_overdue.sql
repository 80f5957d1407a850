-- Invoices past their due day on :as_of that are not fully paid by then, most overdue first.
WITH paid AS (
  SELECT
    p.invoice_id,
    SUM(p.amount_cents) AS paid_cents
  FROM payments AS p
  WHERE p.tenant = :tenant
    AND p.paid_on <= :as_of
  GROUP BY p.invoice_id
)
SELECT
  i.invoice_id,
  i.invoice_number,
  i.customer_id,
  c.name AS customer_name,
  i.issued_on,
  i.due_on,
  i.amount_cents,
  COALESCE(paid.paid_cents, 0) AS paid_cents,
  i.amount_cents - COALESCE(paid.paid_cents, 0) AS outstanding_cents,
  CAST(julianday(:as_of) - julianday(i.due_on) AS INTEGER) AS days_overdue,
  i.currency
FROM invoices AS i
JOIN customers AS c ON c.customer_id = i.customer_id
LEFT JOIN paid ON paid.invoice_id = i.invoice_id
WHERE i.tenant = :tenant
  AND i.issued_on <= :as_of
  AND i.due_on < :as_of
  AND COALESCE(paid.paid_cents, 0) < i.amount_cents
ORDER BY i.due_on, i.invoice_id
