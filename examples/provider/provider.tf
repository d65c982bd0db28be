terraform {
  required_providers {
    dr = {
      source = "registry.terraform.io/dr-project/dr"
    }
  }
}

# The passphrase is best left to the DR_PASSPHRASE environment variable, so it never sits in
# a configuration file. Cloud credentials always come from the environment (AWS_*, GOOGLE_*,
# AZURE_*), never from here.
provider "dr" {
  work_dir = "/var/tmp/dr-drills"

  storage_options = {
    region = "eu-west-1"
  }
}
