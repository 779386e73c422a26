-- Worklist indexes (branch `reading`, npm run bench:worklists): each worklist walks its statuses oldest first and
-- stops at its limit, so each gets a partial index in its own order. Hand-written: drizzle's DSL on `exams` belongs
-- to the exam model, and partial indexes read better here.
-- The second predicate is written as an enum range (awaiting_second_reading and awaiting_arbitration lie between
-- immediate_workup and final_normal): the value awaiting_arbitration, added by 0012 in the same migration run,
-- cannot be named in that transaction; the planner still proves `status in (…)` implies the range.
CREATE INDEX IF NOT EXISTS "exams_first_reading_idx" ON "exams" USING btree ("status_since", "id")
  WHERE "status" IN ('awaiting_first_reading', 'immediate_workup');
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "exams_second_reading_idx" ON "exams" USING btree ("status_since", "id")
  WHERE "status" > 'immediate_workup' AND "status" < 'final_normal';
