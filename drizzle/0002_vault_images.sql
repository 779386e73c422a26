CREATE TABLE "images" (
	"id" uuid PRIMARY KEY NOT NULL,
	"patient_id" uuid NOT NULL,
	"uploaded_by" uuid,
	"content_type" text NOT NULL,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"width" integer,
	"height" integer,
	"bit_depth" integer,
	"dicom" jsonb,
	"storage_key" text NOT NULL,
	"ciphertext_size" bigint NOT NULL,
	"format_version" integer NOT NULL,
	"key_id" text,
	"wrapped_key" "bytea",
	"encrypted_name" "bytea",
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"erased_at" timestamp with time zone,
	"erased_by" uuid,
	"object_deleted_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "patients" ADD COLUMN "erased_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_uploaded_by_users_id_fk" FOREIGN KEY ("uploaded_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_erased_by_users_id_fk" FOREIGN KEY ("erased_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "images_patient_idx" ON "images" USING btree ("patient_id","created_at");--> statement-breakpoint
CREATE INDEX "images_key_idx" ON "images" USING btree ("key_id");--> statement-breakpoint
CREATE UNIQUE INDEX "images_storage_key" ON "images" USING btree ("storage_key");