-- Orders placed between two days (both included); cancelled and declined orders only on request.
SELECT
  o.order_id,
  o.ordered_on,
  o.customer_id,
  o.status,
  o.total_cents,
  o.currency
FROM orders AS o
WHERE o.tenant = :tenant
  AND o.ordered_on BETWEEN :from_date AND :to_date
  AND (:include_cancelled = 1 OR o.status NOT IN ('cancelled', 'declined'))
ORDER BY o.ordered_on, o.order_id
