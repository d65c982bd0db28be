resource "dr_drill" "nightly" {
  name           = "nightly"
  vault_id       = dr_backup_vault.secondary.id
  region_pair_id = dr_region_pair.pipelines.id
  max_age        = "24h"
  verify_command = ["sh", "-c", "test -s pipeline/pipeline.yml"]
  verify_timeout = "5m"

  triggers = {
    pipeline = dr_backup_vault.primary.source_digest
  }
}
