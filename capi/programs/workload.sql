-- A sqlite3 workload for the C allocator: tens of thousands of rows, an
-- index, joins, updates and deletes. Deterministic output.
PRAGMA cache_size = -20000;
CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, city TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO customer SELECT i, 'customer-' || i, 'city-' || (i % 97) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80000)
INSERT INTO orders SELECT i, (i * 7919) % 20000 + 1, (i * 104729) % 1000, printf('%.*c', i % 200, 'x') FROM n;
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX customer_city ON customer(city);
SELECT count(*), sum(amount), sum(length(note)) FROM orders;
SELECT c.city, count(*), sum(o.amount) FROM customer c JOIN orders o ON o.customer = c.id
  GROUP BY c.city ORDER BY sum(o.amount) DESC LIMIT 5;
UPDATE orders SET note = note || note WHERE amount % 3 = 0;
DELETE FROM orders WHERE amount < 300;
DELETE FROM customer WHERE id % 5 = 0;
SELECT count(*), sum(length(note)) FROM orders;
SELECT count(*) FROM orders o LEFT JOIN customer c ON c.id = o.customer WHERE c.id IS NULL;
SELECT c.name, group_concat(o.amount, ',') FROM customer c JOIN orders o ON o.customer = c.id
  WHERE c.id BETWEEN 100 AND 103 GROUP BY c.id ORDER BY c.id;
VACUUM;
SELECT count(*) FROM customer;
