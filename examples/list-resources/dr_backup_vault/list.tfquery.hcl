# After the state itself is lost (Terraform 1.14+): find every vault under a bucket prefix,
# then let `terraform query -generate-config-out=vaults.tf` write a resource block and an
# import block for each one found.
list "dr_backup_vault" "all" {
  provider         = dr
  include_resource = true

  config {
    under = "s3://dr-eu/pipelines?region=eu-west-1"
    depth = 2
  }
}
