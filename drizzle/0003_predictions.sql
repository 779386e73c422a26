CREATE TABLE "predictions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"image_id" uuid NOT NULL,
	"patient_id" uuid NOT NULL,
	"requested_by" uuid,
	"label" text NOT NULL,
	"probability" double precision NOT NULL,
	"probabilities" jsonb NOT NULL,
	"model_name" text NOT NULL,
	"model_version" text NOT NULL,
	"model_sha256" text NOT NULL,
	"model_clinical" boolean NOT NULL,
	"duration_ms" double precision NOT NULL,
	"heatmap_key" text,
	"heatmap_key_id" text,
	"heatmap_wrapped_key" "bytea",
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"erased_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "predictions" ADD CONSTRAINT "predictions_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "predictions" ADD CONSTRAINT "predictions_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "predictions" ADD CONSTRAINT "predictions_requested_by_users_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "predictions_image_idx" ON "predictions" USING btree ("image_id","created_at");--> statement-breakpoint
CREATE INDEX "predictions_patient_idx" ON "predictions" USING btree ("patient_id","created_at");--> statement-breakpoint
CREATE INDEX "predictions_created_idx" ON "predictions" USING btree ("created_at");