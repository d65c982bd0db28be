# `terraform test` with a mocked dr provider (Terraform 1.7+): checks the module's wiring (which
# vault the drill restores from, the pair's targets) in a second, with no vault and no
# passphrase. The mock makes up the computed values; the ones the assertions need are given.
#
#   terraform test -filter=tests/mocked.tftest.hcl

mock_provider "dr" {
  mock_resource "dr_backup_vault" {
    defaults = {
      latest_snapshot_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    }
  }
  mock_resource "dr_drill" {
    defaults = {
      status = "passed"
    }
  }
}

run "the_drill_restores_from_the_secondary_against_the_pairs_targets" {
  command = apply

  assert {
    condition     = dr_drill.restore_pipeline.vault_id == dr_backup_vault.secondary.id
    error_message = "The drill must restore from the standby, in the other region."
  }

  assert {
    condition     = dr_drill.restore_pipeline.region_pair_id == dr_region_pair.pipelines.id
    error_message = "The drill must take its targets from the pair."
  }

  assert {
    condition     = dr_region_pair.pipelines.rpo == "24h" && dr_region_pair.pipelines.rto == "15m"
    error_message = "The pair's targets changed."
  }
}
