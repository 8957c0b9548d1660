CREATE TABLE "webhook_deliveries" (
	"id" bigint PRIMARY KEY NOT NULL,
	"webhook_id" text NOT NULL,
	"endpoint_id" uuid NOT NULL,
	"request_id" uuid NOT NULL,
	"revision" integer NOT NULL,
	"attempts" integer NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"delivered_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
-- Delivered rows move out of the outbox, less their payload, before their column and index go.
INSERT INTO "webhook_deliveries" ("id", "webhook_id", "endpoint_id", "request_id", "revision", "attempts", "created_at", "delivered_at")
SELECT "id", "webhook_id", "endpoint_id", "request_id", "revision", "attempts", "created_at", coalesce("delivered_at", "created_at")
FROM "webhook_outbox" WHERE "state" = 'delivered';--> statement-breakpoint
DELETE FROM "webhook_outbox" WHERE "state" = 'delivered';--> statement-breakpoint
ALTER TABLE "webhook_outbox" DROP CONSTRAINT "webhook_outbox_state_check";--> statement-breakpoint
DROP INDEX "webhook_outbox_delivered_idx";--> statement-breakpoint
CREATE INDEX "webhook_deliveries_delivered_idx" ON "webhook_deliveries" USING btree ("delivered_at");--> statement-breakpoint
ALTER TABLE "webhook_outbox" DROP COLUMN "delivered_at";--> statement-breakpoint
ALTER TABLE "webhook_outbox" ADD CONSTRAINT "webhook_outbox_state_check" CHECK ("webhook_outbox"."state" in ('pending','dead','gone'));