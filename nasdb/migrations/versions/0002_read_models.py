"""Read models (rm_* tables written only by projections), id sequences and the public views.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Downgrade drops the read models and views; they are rebuilt from the log by `nasdb replay`.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PUBLIC_VIEWS = (
    "models",
    "epochs",
    "class_metrics",
    "jobs",
    "studies",
    "datasets",
    "predictions",
    "notes",
    "workers",
)


def upgrade() -> None:
    op.execute(
        """
        create sequence model_ids;
        create sequence study_ids;

        create table projection_checkpoints (
            name     text primary key,
            position bigint not null default 0
        );

        create table rm_datasets (
            id            text primary key,
            name          text not null,
            kind          text not null,
            source        text not null,
            fingerprint   text not null,
            channels      integer not null,
            height        integer not null,
            width         integer not null,
            classes       text[] not null,
            num_classes   integer not null,
            train_size    integer not null,
            val_size      integer not null,
            test_size     integer not null,
            val_seed      integer not null,
            registered_at timestamptz not null
        );

        create table rm_studies (
            id                text primary key,
            dataset_id        text not null,
            strategy          text not null,
            settings          jsonb not null,
            space             jsonb not null,
            objectives        text[] not null,
            budget            jsonb not null,
            state             text not null,
            previous_study_id text,
            next_study_id     text,
            created_at        timestamptz not null,
            updated_at        timestamptz not null
        );

        create table rm_models (
            id              text primary key,
            study_id        text,
            dataset_id      text not null,
            origin          text not null,
            parent_id       text,
            changes         text[] not null default '{}',
            architecture    jsonb not null,
            layer_types     text[] not null default '{}',
            glyph           text not null,
            depth           integer not null,
            params          bigint not null,
            flops           bigint not null,
            optimizer       text,
            lr              double precision,
            weight_decay    double precision,
            batch_size      integer,
            epochs_planned  integer,
            hyperparameters jsonb not null,
            status          text not null,
            priority        integer not null default 0,
            epochs_trained  integer not null default 0,
            best_val_acc    double precision,
            last_val_acc    double precision,
            last_val_loss   double precision,
            last_train_loss double precision,
            test_acc        double precision,
            test_loss       double precision,
            latency_ms      double precision,
            train_seconds   double precision,
            pinned          boolean not null default false,
            tags            text[] not null default '{}',
            notes_count     integer not null default 0,
            predicted_acc   double precision,
            error           text,
            created_at      timestamptz not null,
            finished_at     timestamptz
        );
        create index rm_models_params on rm_models (params);
        create index rm_models_test_acc on rm_models (test_acc);
        create index rm_models_dataset on rm_models (dataset_id);
        create index rm_models_study on rm_models (study_id);
        create index rm_models_parent on rm_models (parent_id);
        create index rm_models_status on rm_models (status);

        create table rm_epochs (
            model_id    text not null,
            epoch       integer not null,
            train_loss  double precision,
            train_acc   double precision,
            val_loss    double precision,
            val_acc     double precision,
            lr          double precision,
            seconds     double precision,
            class_acc   jsonb not null default '{}'::jsonb,
            recorded_at timestamptz not null,
            primary key (model_id, epoch)
        );

        create table rm_class_metrics (
            model_id    text not null,
            class_index integer not null,
            dataset_id  text not null,
            class_name  text not null,
            accuracy    double precision,
            precision   double precision,
            recall      double precision,
            specificity double precision,
            support     integer,
            primary key (model_id, class_index)
        );
        create index rm_class_metrics_class on rm_class_metrics (class_name, model_id);

        create table rm_jobs (
            model_id         text primary key,
            study_id         text,
            priority         integer not null default 0,
            state            text not null,
            worker           text,
            attempt          integer not null default 0,
            lease_expires_at timestamptz,
            heartbeat_at     timestamptz,
            queued_at        timestamptz not null,
            claimed_at       timestamptz,
            finished_at      timestamptz,
            cancel_requested boolean not null default false
        );
        create index rm_jobs_claimable on rm_jobs (state, priority desc, queued_at);

        create table rm_predictions (
            model_id text primary key,
            labels   bytea not null,
            digest   text not null
        );

        create table rm_notes (
            model_id    text not null,
            position    bigint not null,
            text        text not null,
            actor       text,
            recorded_at timestamptz not null,
            primary key (model_id, position)
        );

        create table rm_workers (
            worker      text primary key,
            host        text,
            pid         integer,
            device      text,
            state       text not null,
            current_model text,
            jobs_done   integer not null default 0,
            started_at  timestamptz,
            last_seen   timestamptz not null
        );
        """
    )
    op.execute(
        """
        create view models as select
            id, study_id, dataset_id, origin, parent_id, changes, architecture, layer_types,
            glyph, depth, params, flops, optimizer, lr, weight_decay, batch_size, epochs_planned,
            hyperparameters, status, priority, epochs_trained, best_val_acc, last_val_acc,
            last_val_loss, last_train_loss, test_acc, test_loss, latency_ms, train_seconds,
            pinned, tags, notes_count, predicted_acc, error, created_at, finished_at
        from rm_models;
        create view epochs as select
            model_id, epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds, class_acc,
            recorded_at
        from rm_epochs;
        create view class_metrics as select
            model_id, dataset_id, class_index, class_name, accuracy, precision, recall,
            specificity, support
        from rm_class_metrics;
        create view jobs as select
            model_id, study_id, priority, state, worker, attempt, lease_expires_at, heartbeat_at,
            queued_at, claimed_at, finished_at, cancel_requested
        from rm_jobs;
        create view studies as select
            s.id, s.dataset_id, s.strategy, s.settings, s.space, s.objectives, s.budget, s.state,
            s.previous_study_id, s.next_study_id, s.created_at, s.updated_at,
            (select count(*) from rm_models m where m.study_id = s.id) as models_count
        from rm_studies s;
        create view datasets as select
            id, name, kind, source, fingerprint, channels, height, width, classes, num_classes,
            train_size, val_size, test_size, val_seed, registered_at
        from rm_datasets;
        create view predictions as select model_id, labels, digest from rm_predictions;
        create view notes as select model_id, position, text, actor, recorded_at from rm_notes;
        create view workers as select
            worker, host, pid, device, state, current_model, jobs_done, started_at, last_seen
        from rm_workers;
        """
    )
    views = ", ".join(PUBLIC_VIEWS)
    op.execute(
        f"""
        grant select on {views}, events to nasdb_reader;
        grant usage, select on sequence model_ids, study_ids to nasdb_writer;
        grant select on {views} to nasdb_writer;
        """
    )


def downgrade() -> None:
    for view in PUBLIC_VIEWS:
        op.execute(f"drop view if exists {view}")
    op.execute(
        """
        drop table if exists rm_workers, rm_notes, rm_predictions, rm_jobs, rm_class_metrics,
            rm_epochs, rm_models, rm_studies, rm_datasets, projection_checkpoints;
        drop sequence if exists model_ids, study_ids;
        """
    )
