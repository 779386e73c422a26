ALTER TYPE "public"."role" ADD VALUE 'system';--> statement-breakpoint
CREATE TABLE "dicom_inbox" (
	"id" uuid PRIMARY KEY NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"source" text NOT NULL,
	"calling_ae" text,
	"received_by" uuid,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"study_instance_uid" text,
	"series_instance_uid" text,
	"sop_instance_uid" text,
	"sop_class_uid" text,
	"modality" text,
	"study_date" text,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"storage_key" text NOT NULL,
	"key_id" text,
	"wrapped_key" "bytea",
	"encrypted_identity" "bytea",
	"resolved_by" uuid,
	"resolved_at" timestamp with time zone,
	"patient_id" uuid,
	"image_id" uuid
);
--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "scopes" text[];--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "ae_title" text;--> statement-breakpoint
ALTER TABLE "dicom_inbox" ADD CONSTRAINT "dicom_inbox_received_by_users_id_fk" FOREIGN KEY ("received_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dicom_inbox" ADD CONSTRAINT "dicom_inbox_resolved_by_users_id_fk" FOREIGN KEY ("resolved_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dicom_inbox" ADD CONSTRAINT "dicom_inbox_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dicom_inbox" ADD CONSTRAINT "dicom_inbox_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "dicom_inbox_status_idx" ON "dicom_inbox" USING btree ("status","received_at");