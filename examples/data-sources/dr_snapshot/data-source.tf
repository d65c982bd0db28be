data "dr_snapshot" "latest" {
  vault_id = data.dr_vault.standby.id
}

output "latest_files" {
  value = data.dr_snapshot.latest.files
}
