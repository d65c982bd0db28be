# The bucket and prefix of a vault URL, e.g. for a bucket policy (Terraform 1.8+).
locals {
  standby = provider::dr::parse_vault_url("s3://dr-us/pipelines?region=us-east-1")
}

output "standby_bucket" {
  value = local.standby.bucket # "dr-us"
}
