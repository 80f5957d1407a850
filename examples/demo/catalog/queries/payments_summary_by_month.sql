-- Payments received per calendar month of one year.
SELECT
  substr(p.paid_on, 1, 7) AS month,
  COUNT(*) AS payments,
  COUNT(DISTINCT p.invoice_id) AS invoices_paid,
  SUM(p.amount_cents) AS amount_cents
FROM payments AS p
WHERE p.tenant = :tenant
  AND p.paid_on >= printf('%04d-01-01', :year)
  AND p.paid_on < printf('%04d-01-01', :year + 1)
GROUP BY substr(p.paid_on, 1, 7)
ORDER BY month
