#!/usr/bin/env bash
# The hand-run anchor for moving one tenant between two split-layout headscale databases, as an operator
# (or the cluster_id fork's blog post) would do it: per table, psql \copy (SELECT ...) TO a file, sed the
# cluster_id, psql \copy ... FROM the file. No id remapping, no sequence advance, no verification.
# Usage: anchor.sh SOURCE_DSN TARGET_DSN TENANT FROM_CLUSTER TO_CLUSTER WORKDIR
set -euo pipefail
src=$1 tgt=$2 tenant=$3 from=$4 to=$5 dir=$6
users="SELECT id FROM users WHERE name = '$tenant'"
psql -q -X -v ON_ERROR_STOP=1 "$src" -c "\copy (SELECT * FROM users WHERE name = '$tenant') TO '$dir/users.tsv'"
psql -q -X -v ON_ERROR_STOP=1 "$src" -c "\copy (SELECT * FROM pre_auth_keys WHERE user_id IN ($users)) TO '$dir/pre_auth_keys.tsv'"
psql -q -X -v ON_ERROR_STOP=1 "$src" -c "\copy (SELECT * FROM nodes WHERE user_id IN ($users)) TO '$dir/nodes.tsv'"
# cluster_id is the last column of users and the second of pre_auth_keys and nodes.
sed -i -E "s/\t$from\$/\t$to/" "$dir/users.tsv"
sed -i -E "s/^([0-9]+)\t$from\t/\1\t$to\t/" "$dir/pre_auth_keys.tsv" "$dir/nodes.tsv"
psql -q -X -v ON_ERROR_STOP=1 "$tgt" -c "\copy users FROM '$dir/users.tsv'"
psql -q -X -v ON_ERROR_STOP=1 "$tgt" -c "\copy pre_auth_keys FROM '$dir/pre_auth_keys.tsv'"
psql -q -X -v ON_ERROR_STOP=1 "$tgt" -c "\copy nodes FROM '$dir/nodes.tsv'"
