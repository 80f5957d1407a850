-- Invoiced and collected totals of one tenant for a period (both days included); one row.
SELECT
  COUNT(*) AS invoices,
  COALESCE(SUM(i.net_cents), 0) AS net_cents,
  COALESCE(SUM(i.tax_cents), 0) AS tax_cents,
  COALESCE(SUM(i.amount_cents), 0) AS invoiced_cents,
  (
    SELECT COALESCE(SUM(p.amount_cents), 0)
    FROM payments AS p
    WHERE p.tenant = :tenant
      AND p.paid_on BETWEEN :from_date AND :to_date
  ) AS collected_cents
FROM invoices AS i
WHERE i.tenant = :tenant
  AND i.issued_on BETWEEN :from_date AND :to_date
