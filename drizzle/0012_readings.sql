CREATE TYPE "public"."reading_kind" AS ENUM('first', 'workup', 'second', 'arbitration');--> statement-breakpoint
ALTER TYPE "public"."exam_status" ADD VALUE 'awaiting_arbitration' BEFORE 'final_normal';--> statement-breakpoint
CREATE TABLE "readings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"exam_id" uuid NOT NULL,
	"patient_id" uuid NOT NULL,
	"kind" "reading_kind" NOT NULL,
	"reader_id" uuid NOT NULL,
	"acr_right" integer,
	"acr_left" integer,
	"density_right" text,
	"density_left" text,
	"technically_inadequate" boolean DEFAULT false NOT NULL,
	"findings" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"conclusion" text,
	"exam_status" "exam_status" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "readings" ADD CONSTRAINT "readings_exam_id_exams_id_fk" FOREIGN KEY ("exam_id") REFERENCES "public"."exams"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "readings" ADD CONSTRAINT "readings_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "readings" ADD CONSTRAINT "readings_reader_id_users_id_fk" FOREIGN KEY ("reader_id") REFERENCES "public"."users"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "readings_exam_kind_key" ON "readings" USING btree ("exam_id","kind");--> statement-breakpoint
CREATE INDEX "readings_exam_reader_idx" ON "readings" USING btree ("exam_id","reader_id");--> statement-breakpoint
CREATE INDEX "readings_reader_idx" ON "readings" USING btree ("reader_id","created_at");--> statement-breakpoint
CREATE INDEX "readings_created_idx" ON "readings" USING btree ("created_at");