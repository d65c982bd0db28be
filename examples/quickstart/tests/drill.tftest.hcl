# `terraform test` (Terraform 1.6+) applies the quickstart for real in a throw-away state,
# checks that the drill restored the pipeline from the other region and met its targets, then
# destroys everything it made (the demo vaults have force_destroy = true).
#
#   DR_PASSPHRASE=… terraform test -filter=tests/drill.tftest.hcl

variables {
  primary_vault_url   = "./test-vaults/eu-west-1"
  secondary_vault_url = "./test-vaults/us-east-1"
}

run "the_drill_restores_the_pipeline_from_the_standby" {
  command = apply

  assert {
    condition     = dr_region_pair.pipelines.standby_latest_snapshot_id == dr_backup_vault.primary.latest_snapshot_id
    error_message = "The standby does not hold the snapshot the primary just took."
  }

  assert {
    condition     = dr_drill.restore_pipeline.status == "passed"
    error_message = "The drill failed: ${coalesce(dr_drill.restore_pipeline.failure_reason, "no reason given")}."
  }

  assert {
    condition     = dr_drill.restore_pipeline.files_verified == 3 && dr_drill.restore_pipeline.rto_met && dr_drill.restore_pipeline.rpo_met
    error_message = "The drill did not verify every file of the pipeline within its targets."
  }
}
