# A drill on request (Terraform 1.14+), outside any plan of dr_drill:
#   terraform apply -invoke=action.dr_run_drill.standby
# Its report goes into the vault under drills/adhoc-standby/, where `drctl status` sees it.
action "dr_run_drill" "standby" {
  config {
    name           = "adhoc-standby"
    vault_id       = dr_backup_vault.secondary.id
    verify_command = ["sh", "-c", "test -s pipeline/pipeline.yml"]
    rto            = "30m"
  }
}
