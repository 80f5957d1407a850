-- The lines of one order, with product SKU and name.
SELECT
  l.line_no,
  p.sku,
  p.name AS product_name,
  l.quantity,
  l.unit_price_cents,
  l.line_cents
FROM order_lines AS l
JOIN products AS p ON p.product_id = l.product_id
WHERE l.tenant = :tenant
  AND l.order_id = :order_id
ORDER BY l.line_no, l.order_line_id
