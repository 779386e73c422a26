CREATE TYPE "public"."exam_status" AS ENUM('awaiting_first_reading', 'immediate_workup', 'awaiting_second_reading', 'final_normal', 'recall', 'technical_recall');--> statement-breakpoint
CREATE TABLE "exams" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"patient_id" uuid NOT NULL,
	"date" text NOT NULL,
	"accession_number" text,
	"study_instance_uid" text NOT NULL,
	"status" "exam_status" DEFAULT 'awaiting_first_reading' NOT NULL,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"status_since" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "exam_id" uuid;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "laterality" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "view" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "study_instance_uid" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "series_instance_uid" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "sop_instance_uid" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "sop_class_uid" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "modality" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "presentation_intent" text;--> statement-breakpoint
ALTER TABLE "images" ADD COLUMN "identity_notice" text;--> statement-breakpoint
ALTER TABLE "patients" ADD COLUMN "ipp" text;--> statement-breakpoint
ALTER TABLE "patients" ADD COLUMN "ins" text;--> statement-breakpoint
ALTER TABLE "patients" ADD COLUMN "birth_date" text;--> statement-breakpoint
ALTER TABLE "patients" ADD COLUMN "sex" text;--> statement-breakpoint
ALTER TABLE "exams" ADD CONSTRAINT "exams_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "exams" ADD CONSTRAINT "exams_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "exams_patient_study_key" ON "exams" USING btree ("patient_id","study_instance_uid");--> statement-breakpoint
CREATE INDEX "exams_patient_idx" ON "exams" USING btree ("patient_id","date");--> statement-breakpoint
CREATE INDEX "exams_status_idx" ON "exams" USING btree ("status","status_since");--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_exam_id_exams_id_fk" FOREIGN KEY ("exam_id") REFERENCES "public"."exams"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "images_exam_idx" ON "images" USING btree ("exam_id");--> statement-breakpoint
CREATE INDEX "images_sop_idx" ON "images" USING btree ("sop_instance_uid");--> statement-breakpoint
CREATE UNIQUE INDEX "patients_ipp_key" ON "patients" USING btree ("ipp");--> statement-breakpoint
CREATE UNIQUE INDEX "patients_ins_key" ON "patients" USING btree ("ins");--> statement-breakpoint
CREATE INDEX "patients_birth_date_idx" ON "patients" USING btree ("birth_date");