data "dr_vault" "standby" {
  url = "vaults/us-east-1"
}

output "standby_latest" {
  value = data.dr_vault.standby.latest_snapshot_id
}
