/**
 * The token signing secret. Only the two authorizers may read it (each API
 * construct grants its own authorizer with `RosterFunction.useTokenSecret`).
 */
import { Validations, type RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';

export interface RosterTokenSecretProps {
  readonly removalPolicy: RemovalPolicy;
  /** @default Secrets Manager's AWS managed key */
  readonly encryptionKey?: IKey;
}

export class RosterTokenSecret extends Secret {
  constructor(scope: Construct, id: string, props: RosterTokenSecretProps) {
    super(scope, id, {
      description: 'Roster: the HMAC key (HS256) bearer tokens are signed with; `roster token create --outputs` reads it',
      // 64 letters and digits (~381 bits), used as raw key material: nothing to escape anywhere.
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy,
    });
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The secret is an HMAC signing key, not a credential of another system, so no rotation function has anything to ' +
        'update. Rotate it by putting a new value (`aws secretsmanager put-secret-value`): the authorizers re-read it ' +
        'within 5 minutes and accept the previous version too, so tokens signed before the rotation stay valid until ' +
        'the next one; new tokens are signed with the new value. See docs/operating/access-control.md.',
    });
  }
}
