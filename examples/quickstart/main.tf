# Quickstart: a CI/CD pipeline folder backed up into two vaults in two regions, replicated,
# and restored by a drill that checks the pipeline came back whole.
#
# `scripts/quickstart` copies this folder to .tools/quickstart/ and runs init and apply.
# The passphrase comes from DR_PASSPHRASE (never from this file).

terraform {
  required_providers {
    dr = {
      source = "registry.terraform.io/dr-project/dr"
    }
  }
}

variable "primary_vault_url" {
  description = "Where the primary vault lives: a path (relative to this module), s3://…, gs://… or az://…"
  type        = string
  default     = "./vaults/eu-west-1"
}

variable "secondary_vault_url" {
  description = "Where the secondary vault lives, in another region than the primary."
  type        = string
  default     = "./vaults/us-east-1"
}

provider "dr" {
  work_dir = "${path.module}/.dr-work"
}

resource "dr_backup_vault" "primary" {
  name   = "pipelines-eu"
  region = "eu-west-1"
  url    = var.primary_vault_url

  # A demo: `terraform destroy` (and `terraform test`) may delete these throw-away vaults with
  # their snapshots. A real module leaves this false, so that destroying the resource refuses
  # while the vault holds snapshots.
  force_destroy = true

  source {
    name = "pipeline"
    path = "${path.module}/pipeline"
  }

  retention {
    keep_last = 30
  }

  labels = {
    team = "platform"
  }
}

resource "dr_backup_vault" "secondary" {
  name   = "pipelines-us"
  region = "us-east-1"
  url    = var.secondary_vault_url

  force_destroy = true # a demo vault; see the primary
}

resource "dr_region_pair" "pipelines" {
  name               = "pipelines"
  primary_vault_id   = dr_backup_vault.primary.id
  secondary_vault_id = dr_backup_vault.secondary.id
  strategy           = "backup_restore"
  rpo                = "24h"
  rto                = "15m"

  # Replicate the snapshot taken in this same apply.
  replicate_snapshot_id = dr_backup_vault.primary.latest_snapshot_id
}

resource "dr_drill" "restore_pipeline" {
  name           = "restore-pipeline"
  vault_id       = dr_backup_vault.secondary.id
  region_pair_id = dr_region_pair.pipelines.id
  max_age        = "24h"

  # Runs inside the restored tree; exit 0 passes.
  verify_command = ["sh", "-c", "test -s pipeline/pipeline.yml && sh -n pipeline/scripts/deploy.sh && grep -q region pipeline/prod.tfvars"]

  depends_on = [dr_region_pair.pipelines]
}

output "drill" {
  value = {
    status           = dr_drill.restore_pipeline.status
    restored         = dr_drill.restore_pipeline.restored_snapshot_id
    files_verified   = dr_drill.restore_pipeline.files_verified
    restore_seconds  = dr_drill.restore_pipeline.restore_seconds
    data_age_seconds = dr_drill.restore_pipeline.data_age_seconds
    rto_met          = dr_drill.restore_pipeline.rto_met
    rpo_met          = dr_drill.restore_pipeline.rpo_met
  }
}
