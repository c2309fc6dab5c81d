output "state_bucket" {
  description = "Name of the state bucket (backend \"s3\" bucket)."
  value       = ovh_cloud_project_storage.state.name
}

output "s3_access_key_id" {
  description = "Put into credentials/<env>.enc.env as AWS_ACCESS_KEY_ID."
  value       = ovh_cloud_project_user_s3_credential.state.access_key_id
  sensitive   = true
}

output "s3_secret_access_key" {
  description = "Put into credentials/<env>.enc.env as AWS_SECRET_ACCESS_KEY."
  value       = ovh_cloud_project_user_s3_credential.state.secret_access_key
  sensitive   = true
}
