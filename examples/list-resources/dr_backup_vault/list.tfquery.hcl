# After the state itself is lost (Terraform 1.14+): find every vault under a bucket prefix,
# then let `terraform query -generate-config-out=vaults.tf` write a resource block and an
# import block for each one found. The generated import blocks name each vault by identity
# (its URL, endpoint and account), not by the other options `under` carries: give the region
# in the provider block's storage_options (or AWS_REGION) so that the imports reach the store.
list "dr_backup_vault" "all" {
  provider         = dr
  include_resource = true

  config {
    under = "s3://dr-eu/pipelines?region=eu-west-1"
    depth = 2
  }
}
