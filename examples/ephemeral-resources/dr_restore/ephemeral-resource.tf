# The newest snapshot of the primary vault, restored for this run only (Terraform 1.10+):
# here it seeds a rebuilt runner. The directory is private to the provider's work_dir and
# deleted when the run ends; nothing of it reaches the plan or the state.
ephemeral "dr_restore" "pipeline" {
  vault_id = dr_backup_vault.primary.id
  source   = "pipeline"
}

resource "terraform_data" "seed_runner" {
  input = dr_backup_vault.primary.latest_snapshot_id

  provisioner "local-exec" {
    command = "test ${ephemeral.dr_restore.pipeline.verified} = true && rm -rf runner-seed && cp -r ${ephemeral.dr_restore.pipeline.path} runner-seed"
  }
}
