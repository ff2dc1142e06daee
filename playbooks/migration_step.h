// MigrationStep: one step of a tenant migration, as a small value (modelled on kubeadm's phase
// workflow: a Phase value per file, one Runner). A step has a name (the journal's step name), what
// it does (`run`, returning the details the journal keeps when it is done), what it journals when
// it starts (`start_details`, optional) and what it undoes on rollback (`undo`, optional).
//
// Each step lives in its own file under playbooks/steps/; their ORDER is defined in one place,
// playbooks/steps/step_table.cc. StepRunner (playbooks/step_runner.h) runs them: journaling, the
// tenant-lock check before each step, pause (--until), resume --from, crash points and rollback.
// To add a step: write playbooks/steps/<name>.cc defining its factory (declared in
// playbooks/steps/steps.h) and add one line to the table.
//
// Contract for `run`: idempotent (resume re-runs a step that crashed half-way); reads what earlier
// steps journaled from run.rec, fills run.rep with what it found; a non-OK Status is the step's
// failure (journaled as failed by the runner).
//
// Thread-safety: a value; the runner calls its functions from one thread.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace headshift {

struct MigrationRun;

struct MigrationStep {
  std::string name;
  // Part of the cut (the steps that change the proxy and its sessions). A fleet (proxy.kind fleet)
  // runs them on every proxy host itself: the run pauses before them, and `resume --from` records
  // them as done outside headshift (details `external: true`). Only cut steps can be skipped.
  bool cut = false;
  // Runs before the journal exists (preflight): Migrate/Plan call it, the runner passes over it.
  bool before_journal = false;
  // After the cut the devices live on the target: a failure stops the run (needs_operator, resume
  // continues) instead of rolling back.
  bool after_cut = false;
  // Details journaled when the step starts (before it writes anything). Empty = {}.
  std::function<nlohmann::json(MigrationRun&)> start_details;
  // What the step does; returns the details journaled when it is done.
  std::function<StatusOr<nlohmann::json>(MigrationRun&)> run;
  // What rollback undoes, called only if the step was started (journaled). Adds to `details` what
  // the rollback journals. Empty = nothing to undo.
  std::function<Status(MigrationRun&, nlohmann::json& details)> undo;
  // Rollback order: undos run in reverse step order, except that a step whose `undo_first` says
  // so is undone before all others, and a step naming `undo_after` is undone right after that step.
  std::function<bool(const MigrationRun&)> undo_first;
  std::string undo_after;
};

}  // namespace headshift
