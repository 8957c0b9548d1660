CREATE TABLE "dead_letters" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"ref" text NOT NULL,
	"payload" jsonb NOT NULL,
	"last_error" text NOT NULL,
	"failures" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"resolved_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"user_id" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"request_id" uuid NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_user_id_key_pk" PRIMARY KEY("user_id","key")
);
--> statement-breakpoint
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
CREATE TABLE "purchase_requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "purchase_requests_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"user_id" text NOT NULL,
	"status" text NOT NULL,
	"revision" integer NOT NULL,
	"isbn" text,
	"title" text,
	"author" text,
	"book_key" text NOT NULL,
	"conditions" jsonb NOT NULL,
	"max_total_cents" integer NOT NULL,
	"currency" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"shipping_address" jsonb NOT NULL,
	"payment_token" text NOT NULL,
	"best_offer" jsonb,
	"order_details" jsonb,
	"failure_reason" text,
	"next_run_at" timestamp with time zone,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"watch_count" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "purchase_requests_status_check" CHECK ("purchase_requests"."status" in ('PENDING','SEARCHING','QUOTED','ORDERING','ORDERED','EXPIRED','OUT_OF_STOCK','FAILED','CANCELED')),
	CONSTRAINT "purchase_requests_max_total_check" CHECK ("purchase_requests"."max_total_cents" > 0)
);
--> statement-breakpoint
CREATE TABLE "request_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "request_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"request_id" uuid NOT NULL,
	"revision" integer NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"type" text NOT NULL,
	"status" text NOT NULL,
	"message" text,
	"data" jsonb
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
CREATE TABLE "sellers" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"tier" integer NOT NULL,
	"enabled" boolean NOT NULL,
	"base_url" text NOT NULL,
	"headers" jsonb NOT NULL,
	"timeout_ms" integer NOT NULL,
	"max_concurrency" integer NOT NULL,
	"offer_ttl_seconds" integer NOT NULL,
	"callback_secret" text,
	"quote" jsonb NOT NULL,
	"order_endpoint" jsonb NOT NULL,
	"order_status_endpoint" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_request_id_purchase_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."purchase_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_attempts" ADD CONSTRAINT "order_attempts_request_id_purchase_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."purchase_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "order_attempts" ADD CONSTRAINT "order_attempts_seller_id_sellers_id_fk" FOREIGN KEY ("seller_id") REFERENCES "public"."sellers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "request_events" ADD CONSTRAINT "request_events_request_id_purchase_requests_id_fk" FOREIGN KEY ("request_id") REFERENCES "public"."purchase_requests"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "dead_letters_open_idx" ON "dead_letters" USING btree ("created_at") WHERE "dead_letters"."resolved_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "order_attempts_key_idx" ON "order_attempts" USING btree ("idempotency_key");--> statement-breakpoint
CREATE UNIQUE INDEX "order_attempts_request_no_idx" ON "order_attempts" USING btree ("request_id","attempt_no");--> statement-breakpoint
CREATE UNIQUE INDEX "order_attempts_one_live_idx" ON "order_attempts" USING btree ("request_id") WHERE "order_attempts"."state" <> 'failed';--> statement-breakpoint
CREATE INDEX "order_attempts_due_idx" ON "order_attempts" USING btree ("next_check_at") WHERE "order_attempts"."state" not in ('succeeded','failed');--> statement-breakpoint
CREATE UNIQUE INDEX "purchase_requests_seq_idx" ON "purchase_requests" USING btree ("seq");--> statement-breakpoint
CREATE INDEX "purchase_requests_active_expiry_idx" ON "purchase_requests" USING btree ("expires_at") WHERE "purchase_requests"."status" in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK');--> statement-breakpoint
CREATE INDEX "purchase_requests_user_seq_idx" ON "purchase_requests" USING btree ("user_id","seq" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "purchase_requests_due_idx" ON "purchase_requests" USING btree ("next_run_at") WHERE "purchase_requests"."status" in ('PENDING','SEARCHING','QUOTED','OUT_OF_STOCK');--> statement-breakpoint
CREATE INDEX "purchase_requests_watching_idx" ON "purchase_requests" USING btree ("book_key") WHERE "purchase_requests"."status" in ('QUOTED','OUT_OF_STOCK');--> statement-breakpoint
CREATE INDEX "purchase_requests_ordering_idx" ON "purchase_requests" USING btree ("id") WHERE "purchase_requests"."status" = 'ORDERING';--> statement-breakpoint
CREATE INDEX "purchase_requests_pending_idx" ON "purchase_requests" USING btree ("seq") WHERE "purchase_requests"."status" = 'PENDING';--> statement-breakpoint
CREATE UNIQUE INDEX "request_events_request_revision_idx" ON "request_events" USING btree ("request_id","revision");--> statement-breakpoint
CREATE INDEX "sandbox_payment_calls_key_idx" ON "sandbox_payment_calls" USING btree ("key");