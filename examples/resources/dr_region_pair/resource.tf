resource "dr_region_pair" "pipelines" {
  name               = "pipelines"
  primary_vault_id   = dr_backup_vault.primary.id
  secondary_vault_id = dr_backup_vault.secondary.id
  strategy           = "warm_standby"
  rpo                = "1h"
  rto                = "30m"
  active             = "primary" # "secondary" fails over

  replicate_snapshot_id = dr_backup_vault.primary.latest_snapshot_id
}
