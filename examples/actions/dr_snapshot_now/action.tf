# A snapshot now of the primary vault's recorded sources (Terraform 1.14+), e.g. right before
# a risky change:  terraform apply -invoke=action.dr_snapshot_now.primary
action "dr_snapshot_now" "primary" {
  config {
    vault_id = dr_backup_vault.primary.id
  }
}
