-- Rule files: an alert row per rule that fired, live or shadow, with the event's verdict.
-- Shadow hits are recorded for comparison and never published.
ALTER TABLE fraud_alerts
  ADD COLUMN shadow      boolean NOT NULL DEFAULT false,
  ADD COLUMN event_score integer NOT NULL DEFAULT 0;
