resource "dr_backup_vault" "primary" {
  name   = "pipelines-eu"
  region = "eu-west-1"
  url    = "vaults/eu-west-1" # or s3://bucket/prefix, gs://bucket/prefix, az://container/prefix

  source {
    name    = "pipeline"
    path    = "pipeline"
    include = ["**/*.yml", "**/*.sh", "**/*.tfvars"]
    exclude = ["**/.cache/**"]
  }

  retention {
    keep_last   = 30
    keep_within = "14d"
    lock_for    = "1d"
  }

  labels = {
    team = "platform"
  }
}
