CREATE TABLE "order_attempts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"request_id" uuid NOT NULL,
	"attempt_no" integer NOT NULL,
	"seller_id" uuid NOT NULL,
	"offer" jsonb NOT NULL,
	"idempotency_key" text NOT NULL,
	"state" text NOT NULL,
	"payment_state" text NOT NULL,
	"authorization_id" text,
	"seller_order_id" text,
	"order_total_cents" integer,
	"delivery_eta" timestamp with time zone,
	"failure" text,
	"tries" integer DEFAULT 0 NOT NULL,
	"needs_attention" boolean DEFAULT false NOT NULL,
	"last_error" text,
	"next_check_at" timestamp with time zone,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "order_attempts_state_check" CHECK ("order_attempts"."state" in ('authorizing','ordering','unknown','capturing','voiding','succeeded','failed'))
);
--> statement-breakpoint
CREATE TABLE "sandbox_payment_calls" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "sandbox_payment_calls_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"key" text NOT NULL,
	"operation" text NOT NULL,
	"amount_cents" integer,
	"result" text NOT NULL,
	"effective" boolean NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sandbox_payments" (
	"key" text PRIMARY KEY NOT NULL,
	"authorization_id" text NOT NULL,
	"amount_cents" integer NOT NULL,
	"currency" text NOT NULL,
	"state" text NOT NULL,
	"decline_reason" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "purchase_requests" ADD COLUMN "watch_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "order_attempts" ADD CONSTRAINT "order_attempts_request_id_purchase_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."purchase_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_attempts" ADD CONSTRAINT "order_attempts_seller_id_sellers_id_fk" FOREIGN KEY ("seller_id") REFERENCES "public"."sellers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "order_attempts_key_idx" ON "order_attempts" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "order_attempts_request_no_idx" ON "order_attempts" USING btree ("request_id","attempt_no");--> statement-breakpoint
CREATE UNIQUE INDEX "order_attempts_one_live_idx" ON "order_attempts" USING btree ("request_id") WHERE "order_attempts"."state" not in ('succeeded','failed');--> statement-breakpoint
CREATE INDEX "order_attempts_due_idx" ON "order_attempts" USING btree ("next_check_at") WHERE "order_attempts"."state" not in ('succeeded','failed');--> statement-breakpoint
CREATE INDEX "sandbox_payment_calls_key_idx" ON "sandbox_payment_calls" USING btree ("key");--> statement-breakpoint
CREATE INDEX "purchase_requests_active_expiry_idx" ON "purchase_requests" USING btree ("expires_at") WHERE "purchase_requests"."status" in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK');