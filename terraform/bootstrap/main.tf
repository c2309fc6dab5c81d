locals {
  bucket_arn = "arn:aws:s3:::${var.bucket_name}"
}

# The state bucket, versioned so that a bad state write can be rolled back.
resource "ovh_cloud_project_storage" "state" {
  service_name = var.project_id
  region_name  = var.storage_region
  name         = var.bucket_name

  versioning = {
    status = "enabled"
  }

  lifecycle {
    prevent_destroy = true
  }
}

# A dedicated user whose S3 credentials only reach the state bucket.
resource "ovh_cloud_project_user" "state" {
  service_name = var.project_id
  description  = "accoreboot-${var.env_name}-terraform-state"
  role_names   = ["objectstore_operator"]
}

resource "ovh_cloud_project_user_s3_credential" "state" {
  service_name = var.project_id
  user_id      = ovh_cloud_project_user.state.id
}

# Read/write of state objects, listing, versions, and the lock file Terraform writes next to
# the state (use_lockfile: PutObject / GetObject / DeleteObject on <key>.tflock).
resource "ovh_cloud_project_user_s3_policy" "state" {
  service_name = var.project_id
  user_id      = ovh_cloud_project_user.state.id
  policy = jsonencode({
    Statement = [
      {
        Sid    = "StateBucket"
        Effect = "Allow"
        Action = [
          "s3:ListBucket",
          "s3:ListBucketVersions",
          "s3:GetBucketLocation",
          "s3:GetBucketVersioning",
          "s3:ListBucketMultipartUploads",
        ]
        Resource = [local.bucket_arn]
      },
      {
        Sid    = "StateAndLockObjects"
        Effect = "Allow"
        Action = [
          "s3:GetObject",
          "s3:GetObjectVersion",
          "s3:PutObject",
          "s3:DeleteObject",
          "s3:ListMultipartUploadParts",
          "s3:AbortMultipartUpload",
        ]
        Resource = ["${local.bucket_arn}/*"]
      },
    ]
  })
}
