"""attribution: bookings made on calls (patient, slot, kind)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dialer.store.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bookings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('attempt_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('start_at', dialer.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=True),
    sa.Column('booked_at', dialer.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['attempts.id'], name=op.f('fk_bookings_attempt_id_attempts')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_bookings_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bookings'))
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bookings_attempt_id'), ['attempt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_patient_id'), ['patient_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bookings_patient_id'))
        batch_op.drop_index(batch_op.f('ix_bookings_attempt_id'))

    op.drop_table('bookings')
